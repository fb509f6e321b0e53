rule basinhopping:
    input:
        train=f"{RES}/experiments/{{exp}}/train.parquet",
    output:
        minima=f"{RES}/landscapes/{{exp}}/bh_minima.parquet",
        quenches=f"{RES}/landscapes/{{exp}}/quenches.parquet",
    log:
        f"{RES}/logs/basinhopping/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/basinhopping/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    threads: CFG.threads
    resources:
        runtime=600,
        mem_mb=4000,
        gpu=uses_gpu,
    params:
        resolved=RESOLVED,
        digest=step_digest("basinhopping"),
        db=lambda w: f"{RES}/work/{w.exp}/basinhopping.sqlite",
    shell:
        "python -m losslandscapes basinhopping --configfile {params.resolved:q} --expect {params.digest} --experiment {wildcards.exp} --train {input.train:q}"
        " --db {params.db:q} --minima {output.minima:q}"
        " --quenches {output.quenches:q} --threads {threads} > {log:q} 2>&1"


rule connect:
    input:
        train=f"{RES}/experiments/{{exp}}/train.parquet",
        start_minima=f"{RES}/landscapes/{{exp}}/bh_minima.parquet",
    output:
        minima=f"{RES}/landscapes/{{exp}}/minima.parquet",
        ts=f"{RES}/landscapes/{{exp}}/ts.parquet",
    log:
        f"{RES}/logs/connect/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/connect/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    threads: CFG.threads
    resources:
        runtime=1440,
        mem_mb=4000,
    params:
        resolved=RESOLVED,
        digest=step_digest("connect"),
        db=lambda w: f"{RES}/work/{w.exp}/connect.sqlite",
    shell:
        "python -m losslandscapes connect --configfile {params.resolved:q} --expect {params.digest} --experiment {wildcards.exp} --train {input.train:q}"
        " --start-minima {input.start_minima:q} --db {params.db:q}"
        " --minima {output.minima:q} --ts {output.ts:q} --threads {threads} > {log:q} 2>&1"


rule draws:
    input:
        experiment_source,
    output:
        f"{RES}/landscapes/{{exp}}/draws.parquet",
    log:
        f"{RES}/logs/draws/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/draws/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    threads: CFG.threads
    resources:
        runtime=600,
        mem_mb=4000,
        gpu=uses_gpu,
    params:
        resolved=RESOLVED,
        digest=step_digest("draws"),
        db_dir=lambda w: f"{RES}/work/{w.exp}",
        source=lambda w, input: (
            f"--source {shlex.quote(input[0])}" if len(input) else ""
        ),
    shell:
        "python -m losslandscapes draws --configfile {params.resolved:q} --expect {params.digest} --experiment {wildcards.exp} {params.source}"
        " --db-dir {params.db_dir:q} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule pathsample:
    input:
        minima=f"{RES}/landscapes/{{exp}}/minima.parquet",
        ts=f"{RES}/landscapes/{{exp}}/ts.parquet",
    output:
        multiext(
            f"{RES}/landscapes/{{exp}}/pathsample/",
            "min.data",
            "ts.data",
            "points.min",
            "points.ts",
        ),
    log:
        f"{RES}/logs/pathsample/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/pathsample/{{exp}}.tsv"
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        out_dir=lambda w: f"{RES}/landscapes/{w.exp}/pathsample",
    shell:
        "python -m losslandscapes pathsample --minima {input.minima:q} --ts {input.ts:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
