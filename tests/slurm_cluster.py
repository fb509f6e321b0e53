"""A real single-node SLURM cluster on this machine (Debian's slurm-wlm and munge), for tests.

Accounting is off; jobs are tracked with `squeue` (MinJobAge keeps finished jobs visible).
Every daemon started here is stopped by the PID file it wrote.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]


def ensure_installed() -> str | None:
    """None when slurmctld, slurmd and munged are available; otherwise why they are not."""
    if all(shutil.which(b) or Path(f"/usr/sbin/{b}").exists() for b in ("slurmctld", "slurmd", "munged")):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "slurm-wlm is not installed and apt-get as root is not available"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.pids = {name: root / f"{name}.pid" for name in ("slurmctld", "slurmd")}
        self.munge_pid = Path("/run/munge/munged.pid")
        self.started_munge = False
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.linked: list[Path] = []

    def write_config(self) -> None:
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        (self.root / "spool").mkdir(exist_ok=True)
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        r = self.root
        self.conf.write_text(f"""ClusterName=losslandscapes
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={int(mem * 0.8)} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        (self.root / "gres.conf").write_text("AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null\n")
        # job steps (srun inside a job) look for the configuration in /etc/slurm
        etc = Path("/etc/slurm")
        etc.mkdir(exist_ok=True)
        for name in ("slurm.conf", "gres.conf"):
            if not (etc / name).exists():
                (etc / name).symlink_to(self.root / name)
                self.linked.append(etc / name)

    def start(self) -> None:
        self.write_config()
        if not self.munge_pid.exists():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            if not Path("/etc/munge/munge.key").exists():
                subprocess.run(["mungekey", "--create"], check=True)
                shutil.chown("/etc/munge/munge.key", "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
            self.started_munge = True
        subprocess.run(["slurmctld"], env=self.env, check=True)
        subprocess.run(["slurmd", "-N", "localhost"], env=self.env, check=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True).stdout
            if "idle" in out:
                return
            time.sleep(1)
        raise RuntimeError(f"SLURM node never became idle: {out!r}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in self.root.glob("*.log") if p.exists())

    def stop(self) -> None:
        for link in self.linked:
            link.unlink(missing_ok=True)
        pids = list(self.pids.values()) + ([self.munge_pid] if self.started_munge else [])
        for pidfile in pids:
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
