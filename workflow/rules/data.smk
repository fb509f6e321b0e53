rule ljat3_dataset:
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
        kwargs=lambda w, output: kwargs(
            name=w.dataset,
            L=CFG.datasets[w.dataset]["L"],
            ljat3_cfg=CFG.ljat3,
            seed=derive_seed(CFG.seed, w.dataset),
            device=CFG.device,
            output=output[0],
        ),
    shell:
        "python -m losslandscapes ljat3 --threads {threads} --kwargs {params.kwargs:q} > {log} 2>&1"


rule experiment_data:
    input:
        experiment_source,
    output:
        train=f"{RES}/experiments/{{exp}}/train.parquet",
        test=f"{RES}/experiments/{{exp}}/test.parquet",
    log:
        f"{RES}/logs/experiments/{{exp}}.log",
    benchmark:
        f"{RES}/benchmarks/experiments/{{exp}}.tsv"
    priority: critical_first
    conda:
        ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        kwargs=lambda w, input, output: kwargs(
            exp=exp_dict(w, drop=("search", "connect")),
            dataset=CFG.datasets[CFG.experiment(w.exp).data],
            source=input[0] if len(input) else None,
            out_train=output.train,
            out_test=output.test,
        ),
    shell:
        "python -m losslandscapes experiment --kwargs {params.kwargs:q} > {log} 2>&1"
