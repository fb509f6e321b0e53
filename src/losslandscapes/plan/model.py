"""What a run will cost: every job of a configuration with its predicted CPU-seconds (GPU-seconds
where it runs on a GPU), and the wall time on given machines (docs/cluster.md).

A pilot (``plan.pilot``) measures each landscape's rates; the model scales them to the
configuration's budgets:

- basin-hopping runs until its coverage target or its step budget. The quenches it needs are
  extrapolated from the pilot's class abundances (``coverage.sample_for_coverage``: Chao and Jost
  2012), rounded up to whole cycles of ``chains`` and held between the search's lower bounds (every
  chain one step, ``min_quenches``) and its budget ``chains x (steps + 1)``; a target beyond
  ``EXTRAPOLATION`` times the pilot's sample counts as out of reach (the budget). Its classes
  follow ``classes_after``. The run's stop counts chains as sampling units; the model counts
  quenches, a close proxy when the chains are many (compared with a measured run in
  docs/performance.md);
- connect needs the pilot's attempts per class joined for each class it must join (all, or its
  ``connect_lowest``), at most ``max_pairs``, plus ``grow_pairs`` or the pairs among its
  ``grow_lowest`` lowest classes, whichever is fewer (the grow phase's coverage stop is not
  modelled);
- metrics costs a fixed part plus a part per symmetry class, the classes being basin-hopping's plus
  those that connect's attempts add;
- a later draw costs its quenches (``draw_search``'s budget) and the pilot's cost besides them;
- every job adds the measured start of its Python process (importing torch for ljat3 and the
  landscape steps, not for the others).

Wall time: jobs are placed on ``nodes`` machines of ``cores`` cores (and ``gpus`` GPUs) in
dependency order, longest remaining path first; a job holds min(threads, its width, cores) cores,
its width being the tasks it runs side by side (chains; connect's attempts per cycle, on average
over its Dijkstra and grow cycles), and runs for its CPU-seconds over min(cores, width) (ideal
scaling, an optimistic bound). A job of a kind
that uses a GPU holds one GPU and one core when ``gpus`` > 0 and its search runs ``gpu_speedup``
times faster than on one core.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from losslandscapes.config import Config, Experiment
from losslandscapes.landscape.coverage import classes_at, coverage_at, sample_for_coverage
from losslandscapes.landscape.connect import GROW_CYCLE, PATHS_PER_CYCLE
from losslandscapes.plan.pilot import Pilot, Rates


@dataclass(frozen=True)
class Job:
    """One job of the workflow, predicted."""

    rule: str
    exp: str | None  # experiment, data set or figure the job is for (None: one per run)
    cpu_s: float
    gpu_s: float = 0.0
    quenches: int = 0
    pair_attempts: int = 0
    width: float = 1.0  # tasks it runs side by side (on average)
    after: tuple[tuple[str, str | None], ...] = field(default=(), compare=False)  # (rule, exp) it waits for

    def record(self) -> dict:
        return {"rule": self.rule, "exp": self.exp, "cpu_s": round(self.cpu_s, 1), "gpu_s": round(self.gpu_s, 1),
                "quenches": self.quenches, "pair_attempts": self.pair_attempts}


EXTRAPOLATION = 3  # extrapolate a pilot's sample to at most this many times its size (Chao et al. 2014:
#                    reliable to about double or triple); beyond, each quench finds a new class with
#                    the probability 1 - coverage reached there (a conservative continuation)


def quenches_needed(exp: Experiment, counts) -> int:
    """Quenches that ``exp``'s basin-hopping will run (see the module docstring): its budget
    where the coverage target lies beyond ``EXTRAPOLATION`` times the pilot's sample."""
    s = exp.search
    budget = s.chains * (s.steps + 1)
    n = int(np.sum(counts))
    if not s.coverage or not np.any(np.asarray(counts) > 1):  # no class seen twice: no sign of an end
        return budget
    k = sample_for_coverage(counts, s.coverage, budget)
    if k > EXTRAPOLATION * n:
        return budget
    k = max(k, s.min_quenches, 2 * s.chains)
    return int(min(math.ceil(k / s.chains) * s.chains, budget))


def classes_after(counts, k: int) -> float:
    """Classes that ``k`` quenches find: ``coverage.classes_at`` up to ``EXTRAPOLATION`` times the
    pilot's sample, then one new class per quench with probability 1 - coverage there; every
    quench a new class where the pilot saw no class twice."""
    n = int(np.sum(counts))
    if not np.any(np.asarray(counts) > 1):
        return float(k)
    m = EXTRAPOLATION * n
    if k <= m:
        return classes_at(counts, k)
    return classes_at(counts, m) + (k - m) * (1.0 - coverage_at(counts, m))


def grow_attempts(exp: Experiment, classes: float) -> int:
    """Attempts of ``exp``'s grow phase: ``grow_pairs``, at most one per pair of its
    ``grow_lowest`` lowest classes."""
    low = int(min(classes, exp.connect.grow_lowest))
    return min(exp.connect.grow_pairs, low * (low - 1) // 2)


def attempts_needed(exp: Experiment, classes: float, r: Rates) -> int:
    """Pair and single-ended attempts of ``exp``'s connect for ``classes`` classes: the pilot's
    attempts per class joined for each class to join, at most ``max_pairs``, then the grow phase
    (``grow_attempts``)."""
    if not exp.transition_states:
        return 0
    c = exp.connect
    targets = max(min(classes, c.connect_lowest or classes) - 1, 0)
    return int(min(math.ceil(targets * r.attempts_per_class), c.max_pairs) + grow_attempts(exp, classes))


def jobs(cfg: Config, p: Pilot, gpus: int = 0, gpu_speedup: float = 1.0) -> list[Job]:
    """Every job of ``cfg``'s workflow, predicted from the pilot ``p``."""
    torch_s, plain_s = p.startup_s["torch"], p.startup_s["plain"]  # experiment and analysis steps need no torch
    out = [Job("ljat3", d, torch_s + p.ljat3_s[d]) for d in cfg.ljat3_datasets()]
    landscape_done = []
    for e in cfg.experiments:
        r = p.rates[e.id]
        on_gpu = gpus > 0 and e.data_kind.gpu

        def search(seconds: float) -> tuple[float, float]:  # (cpu_s, gpu_s) of a search
            return (0.0, seconds / gpu_speedup) if on_gpu else (seconds, 0.0)

        src = (("ljat3", e.data),) if e.data_kind.generated else ()
        out.append(Job("experiment", e.id, plain_s + r.experiment_s, after=src))
        q = quenches_needed(e, r.counts)
        classes = classes_after(r.counts, q)
        cpu, gpu = search(q * r.quench_s)
        out.append(Job("basinhopping", e.id, torch_s + r.bh_setup_s + cpu, gpu, quenches=q, width=e.search.chains,
                       after=(("experiment", e.id),)))
        n = attempts_needed(e, classes, r)
        grow = grow_attempts(e, classes) if n else 0  # GROW_CYCLE attempts side by side
        width = n / ((n - grow) / PATHS_PER_CYCLE + grow / GROW_CYCLE) if n else 1.0
        out.append(Job("connect", e.id, torch_s + r.connect_setup_s + n * r.attempt_s, pair_attempts=n, width=width,
                       after=(("basinhopping", e.id),)))
        classes += n * r.new_minima_per_attempt / max(r.minima_per_class, 1.0)
        out.append(Job("metrics", e.id, torch_s + r.metrics_fixed_s + classes * r.metrics_class_s,
                       after=(("connect", e.id),)))
        landscape_done += [("metrics", e.id)]
        if e.draws > 1:
            dq = e.draw_search.chains * (e.draw_search.steps + 1)
            cpu, gpu = search((e.draws - 1) * dq * r.quench_s)
            out.append(Job("draws", e.id, torch_s + (e.draws - 1) * r.draw_s + cpu, gpu, quenches=(e.draws - 1) * dq,
                           width=e.draw_search.chains, after=src))
            landscape_done += [("draws", e.id)]
        if e.transition_states:
            out.append(Job("pathsample", e.id, plain_s + r.pathsample_s, after=(("connect", e.id),)))
            out.append(Job("disconnectivity", e.id, plain_s + r.disconnectivity_s, after=(("connect", e.id),)))
            landscape_done += [("disconnectivity", e.id)]
    done = tuple(landscape_done)
    if cfg.present(cfg.tables):
        out.append(Job("tables", None, plain_s + p.tables_s, after=done))
    if cfg.paper_run:
        out.append(Job("claims", None, plain_s + p.claims_s, after=done))
    out += [Job("figure", f, plain_s + s, after=done) for f, s in p.figure_s.items()]
    return out


def wall_seconds(jobs: list[Job], nodes: int, cores: int, gpus: int = 0, threads: int = 1) -> float:
    """Wall time of ``jobs`` on ``nodes`` machines of ``cores`` cores and ``gpus`` GPUs each
    (list scheduling, longest remaining path first; see the module docstring)."""
    key = {(j.rule, j.exp): j for j in jobs}

    def use(j: Job) -> tuple[int, int, float]:  # (cores, gpus, seconds)
        if j.gpu_s > 0:
            return 1, 1, j.gpu_s + j.cpu_s
        c = max(1, min(threads, math.ceil(j.width), cores))
        return c, 0, j.cpu_s / min(c, j.width)

    tail: dict = {}

    def remaining(k) -> float:  # longest path from the start of job k to the end of the run
        if k not in tail:
            after = [j for j in jobs if k in j.after]
            tail[k] = use(key[k])[2] + max((remaining((j.rule, j.exp)) for j in after), default=0.0)
        return tail[k]

    free = [[cores, gpus] for _ in range(nodes)]
    waiting = sorted(key, key=lambda k: -remaining(k))
    finished: set = set()
    running: list = []  # (end, order, job key, node, cores, gpus)
    now, order = 0.0, 0
    while waiting or running:
        for k in list(waiting):
            if all(a in finished for a in key[k].after):
                c, g, s = use(key[k])
                node = next((i for i, f in enumerate(free) if f[0] >= c and f[1] >= g), None)
                if node is not None:
                    free[node][0] -= c
                    free[node][1] -= g
                    heapq.heappush(running, (now + s, order, k, node, c, g))
                    order += 1
                    waiting.remove(k)
        if not running:
            raise ValueError(f"jobs that can never start: {waiting[:3]} (a dependency is missing)")
        now, _, k, node, c, g = heapq.heappop(running)
        free[node][0] += c
        free[node][1] += g
        finished.add(k)
    return now


def per_rule(jobs: list[Job]) -> dict:
    """{rule: {"jobs", "cpu_s", "gpu_s"}} summed, in order of first appearance."""
    out: dict = {}
    for j in jobs:
        r = out.setdefault(j.rule, {"jobs": 0, "cpu_s": 0.0, "gpu_s": 0.0})
        r["jobs"] += 1
        r["cpu_s"] += j.cpu_s
        r["gpu_s"] += j.gpu_s
    return out


def table(jobs: list[Job], plan: dict) -> str:
    """The plan as Markdown: every job, then the sums per rule and the wall time."""
    lines = ["| rule | for | CPU-s | GPU-s | quenches | pair attempts |", "|---|---|---|---|---|---|"]
    lines += [f"| {j.rule} | {j.exp or ''} | {j.cpu_s:,.0f} | {j.gpu_s:,.0f} | {j.quenches or ''} | "
              f"{j.pair_attempts or ''} |" for j in jobs]
    lines += ["", "| rule | jobs | CPU-s | GPU-s |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['jobs']} | {v['cpu_s']:,.0f} | {v['gpu_s']:,.0f} |" for k, v in per_rule(jobs).items()]
    lines += [f"| all | {len(jobs)} | {plan['total_cpu_s']:,.0f} | {plan['total_gpu_s']:,.0f} |", ""]
    gpus = f" and {plan['gpus_per_node']} GPUs" if plan["gpus_per_node"] else ""
    lines.append(f"Wall time on {plan['nodes']} x {plan['cores_per_node']} cores{gpus}, {plan['threads']} threads "
                 f"per job: {plan['wall_s'] / 3600:.2f} h ({plan['wall_s']:,.0f} s).")
    return "\n".join(lines)
