#!/usr/bin/env bash
# issue 25's command at HEAD from a clean clone, cold HOME; ratios; deploy probe; report
set -u
R=/work/runs/s42/done; C=/work/ci/done42
rm -rf $C $R/home $R/run; mkdir -p $R/home
git clone -q /work/main $C && cd $C && git log --oneline -1 > $R/commit.txt
python3 -m venv .venv && . .venv/bin/activate
s=$(date +%s); (pip install -q torch==2.13.0 && pip install -q -e '.[openvino]') > $R/install.log 2>&1; echo "install rc=$? $(( $(date +%s) - s ))s" >> $R/install.log
sleep 20
s=$(date +%s)
HOME=$R/home footprint bench run --models embedded,front-end-bf16+int8-inductor-bf16,front-end-bf16+int8-inductor-bf16+buckets,front-end-bf16+int8-inductor-static-bf16,front-end-compiled+int8-inductor-static-bf16,bf16+front-end-bf16+compile-encoder,bf16+front-end-compiled+compile-encoder,int8-dynamic,ov-int8,ov-fp32 --repeats 5 --threads 2 --out $R/run > $R/run.console 2>&1
echo "rc=$? total=$(( $(date +%s) - s ))s" >> $R/run.console
HOME=$R/home footprint bench ratios $R/run > $R/ratios.txt 2>&1; echo "rc=$?" >> $R/ratios.txt
s=$(date +%s)
HOME=$R/home python tools/deploy_probe.py --recipes front-end-bf16+int8-inductor-static-bf16,front-end-compiled+int8-inductor-static-bf16,bf16+front-end-compiled+compile-encoder --utterances 160 --repeats 3 --threads 2 --json $R/deploy-probe.json > $R/deploy.console 2>&1
echo "rc=$? total=$(( $(date +%s) - s ))s" >> $R/deploy.console
HOME=$R/home footprint report $R/run > $R/report.console 2>&1; echo "rc=$?" >> $R/report.console
