rule ljat3:
    output:
        f"{RES}/data/ljat3/{{dataset}}.parquet",
    log:
        f"{RES}/logs/ljat3/{{dataset}}.log",
    benchmark:
        f"{RES}/benchmarks/ljat3/{{dataset}}.tsv"
    priority: 3
    conda:
        ENV
    threads: CFG.threads
    resources:
        runtime=60,
        mem_mb=6000,
    params:
        resolved=RESOLVED,
        digest=step_digest("ljat3"),
    shell:
        "python -m losslandscapes ljat3 --configfile {params.resolved:q} --expect {params.digest} --dataset {wildcards.dataset} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule experiment:
    input:
        experiment_source,
    output:
        train=f"{RES}/experiments/{{exp}}/train.parquet",
        test=f"{RES}/experiments/{{exp}}/test.parquet",
    log:
        f"{RES}/logs/experiment/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/experiment/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        resolved=RESOLVED,
        digest=step_digest("experiment"),
        source=lambda w, input: (
            f"--source {shlex.quote(input[0])}" if len(input) else ""
        ),
    shell:
        "python -m losslandscapes experiment --configfile {params.resolved:q} --expect {params.digest} --experiment {wildcards.exp} {params.source}"
        " --train {output.train:q} --test {output.test:q} > {log:q} 2>&1"
