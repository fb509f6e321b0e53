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
        kwargs=lambda w, input, output: kwargs(
            exp=exp_dict(w, drop=("connect",)),
            train=input.train,
            db_path=f"{RES}/work/{w.exp}/basinhopping.sqlite",
            output=output.minima,
            quenches=output.quenches,
            device=CFG.device,
        ),
    shell:
        "python -m losslandscapes basinhopping --threads {threads} --kwargs {params.kwargs:q} > {log} 2>&1"


rule pathways:
    input:
        train=f"{RES}/experiments/{{exp}}/train.parquet",
        bh_minima=f"{RES}/landscapes/{{exp}}/bh_minima.parquet",
    output:
        minima=f"{RES}/landscapes/{{exp}}/minima.parquet",
        ts=f"{RES}/landscapes/{{exp}}/ts.parquet",
    log:
        f"{RES}/logs/pathways/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/pathways/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    threads: CFG.threads
    resources:
        runtime=1440,
        mem_mb=4000,
    params:
        kwargs=lambda w, input, output: kwargs(
            exp=exp_dict(w),
            train=input.train,
            bh_minima=input.bh_minima,
            db_path=f"{RES}/work/{w.exp}/pathways.sqlite",
            out_minima=output.minima,
            out_ts=output.ts,
            device=CFG.device,
        ),
    shell:
        "python -m losslandscapes pathways --threads {threads} --kwargs {params.kwargs:q} > {log} 2>&1"


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
        kwargs=lambda w, input, output: kwargs(
            exp=exp_dict(w, drop=("connect",), draws=True),
            dataset=CFG.datasets[CFG.experiment(w.exp).data],
            source=input[0] if len(input) else None,
            db_dir=f"{RES}/work/{w.exp}",
            output=output[0],
            auc=CFG.auc,
            device=CFG.device,
        ),
    shell:
        "python -m losslandscapes draws --threads {threads} --kwargs {params.kwargs:q} > {log} 2>&1"


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
        kwargs=lambda w, input: kwargs(
            minima_path=input.minima,
            ts_path=input.ts,
            outdir=f"{RES}/landscapes/{w.exp}/pathsample",
        ),
    shell:
        "python -m losslandscapes pathsample --kwargs {params.kwargs:q} > {log} 2>&1"
