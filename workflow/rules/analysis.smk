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
        kwargs=lambda w, input, output: kwargs(
            exp=exp_dict(w),
            train=input.train,
            test=input.test,
            minima=input.minima,
            output=output[0],
            auc=CFG.auc,
        ),
    shell:
        "python -m losslandscapes metrics --threads {threads} --kwargs {params.kwargs:q} > {log} 2>&1"


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
        kwargs=lambda w, input, output: kwargs(
            minima=input.minima, ts=input.ts, output=output[0], n_levels=CFG.levels
        ),
    shell:
        "python -m losslandscapes disconnectivity --kwargs {params.kwargs:q} > {log} 2>&1"


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
        kwargs=lambda w: kwargs(
            tables=CFG.present(CFG.tables),
            inputs={
                e: f
                for n in CFG.present(CFG.tables)
                for e, f in spec_inputs(CFG.tables, n).items()
            },
            outdir=f"{RES}/tables",
        ),
    shell:
        "python -m losslandscapes tables --kwargs {params.kwargs:q} > {log} 2>&1"


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
        kwargs=lambda w: kwargs(
            inputs={e: landscape_files(e) for e in CFG.ids()}, outdir=f"{RES}/tables"
        ),
    shell:
        "python -m losslandscapes claims --kwargs {params.kwargs:q} > {log} 2>&1"


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
        kwargs=lambda w, output: kwargs(
            spec=CFG.present(CFG.figures)[w.figure],
            inputs=spec_inputs(CFG.figures, w.figure),
            output=output[0],
        ),
    shell:
        "python -m losslandscapes figure --kwargs {params.kwargs:q} > {log} 2>&1"
