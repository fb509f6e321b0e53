rule metrics:
    input:
        train=f"{RES}/experiments/{{exp}}/train.parquet",
        test=f"{RES}/experiments/{{exp}}/test.parquet",
        minima=f"{RES}/landscapes/{{exp}}/minima.parquet",
    output:
        f"{RES}/landscapes/{{exp}}/metrics.parquet",
    log:
        f"{RES}/logs/metrics/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/metrics/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    threads: CFG.threads
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        resolved=RESOLVED,
        digest=step_digest("metrics"),
    shell:
        "python -m losslandscapes metrics --configfile {params.resolved:q} --expect {params.digest} --experiment {wildcards.exp} --train {input.train:q}"
        " --test {input.test:q} --minima {input.minima:q} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule disconnectivity:
    input:
        minima=f"{RES}/landscapes/{{exp}}/minima.parquet",
        ts=f"{RES}/landscapes/{{exp}}/ts.parquet",
    output:
        f"{RES}/landscapes/{{exp}}/disconnectivity.parquet",
    log:
        f"{RES}/logs/disconnectivity/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/disconnectivity/{{exp}}.tsv"
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        resolved=RESOLVED,
        digest=step_digest("disconnectivity"),
    shell:
        "python -m losslandscapes disconnectivity --configfile {params.resolved:q} --expect {params.digest} --minima {input.minima:q} --ts {input.ts:q}"
        " --out {output:q} > {log:q} 2>&1"


rule tables:
    input:
        lambda w: flat_inputs(CFG.tables, CFG.present(CFG.tables)),
    output:
        report(
            f"{RES}/tables/comparison.md",
            caption="../report/comparison.rst",
            category="Tables",
        ),
        [f"{RES}/tables/{name}.parquet" for name in CFG.present(CFG.tables)],
        [
            report(
                f"{RES}/tables/{name}.md",
                caption="../report/table.rst",
                category="Tables",
            )
            for name in CFG.present(CFG.tables)
        ],
    log:
        f"{RES}/logs/tables.log",
    benchmark:
        f"{RES}/benchmarks/tables.tsv"
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        resolved=RESOLVED,
        digest=step_digest("tables"),
        out_dir=lambda w, output: os.path.dirname(output[0]),
        results=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
    shell:
        "python -m losslandscapes tables --configfile {params.resolved:q} --expect {params.digest} --results {params.results:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule claims:
    input:
        lambda w: sorted(p for e in CFG.ids() for p in landscape_files(e).values()),
    output:
        report(
            f"{RES}/tables/claims.md",
            caption="../report/claims.rst",
            category="Tables",
        ),
        f"{RES}/tables/claims.parquet",
    log:
        f"{RES}/logs/claims.log",
    benchmark:
        f"{RES}/benchmarks/claims.tsv"
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        resolved=RESOLVED,
        digest=step_digest("claims"),
        out_dir=lambda w, output: os.path.dirname(output[0]),
        results=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
    shell:
        "python -m losslandscapes claims --configfile {params.resolved:q} --expect {params.digest} --results {params.results:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figure:
    input:
        lambda w: flat_inputs(CFG.figures, [w.figure]),
    output:
        report(
            f"{RES}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        f"{RES}/logs/figures/{{figure}}.log",
    benchmark:
        f"{RES}/benchmarks/figures/{{figure}}.tsv"
    wildcard_constraints:
        figure="|".join(CFG.present(CFG.figures)) or "NONE",
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        resolved=RESOLVED,
        digest=step_digest("figure"),
        results=lambda w, output: os.path.dirname(os.path.dirname(output[0])),
    shell:
        "python -m losslandscapes figure --configfile {params.resolved:q} --expect {params.digest} --figure {wildcards.figure} --results {params.results:q} --out {output:q}"
        " > {log:q} 2>&1"
