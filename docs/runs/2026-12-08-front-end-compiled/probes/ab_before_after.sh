#!/usr/bin/env bash
# interleaved before/after: whole bench runs alternating 800caea (before) and the new HEAD (after), one HOME
. /work/main/.venv/bin/activate
R=/work/runs/s42/ab; rm -rf $R/home $R/run-* $R/summary.txt; mkdir -p $R/home
cp -r ~/.cache/w2v-footprint/corpus $R/home/ 2>/dev/null; mkdir -p $R/home/.cache/w2v-footprint && mv $R/home/corpus $R/home/.cache/w2v-footprint/
for tag in before after before2 after2; do
  src=$R/before; [[ $tag == after* ]] && src=$R/after
  cd $src; s=$(date +%s)
  PYTHONPATH=$src HOME=$R/home python -m footprint bench run --models embedded,front-end-bf16+int8-inductor-bf16,front-end-bf16+int8-inductor-static-bf16,bf16+front-end-bf16+compile-encoder --device cpu --repeats 3 --threads 2 --scenarios batched,unseen --fresh --overhead-pairs 0 --limit 120 --out $R/run-$tag > $R/$tag.log 2>&1
  echo "$tag rc=$? $(( $(date +%s) - s ))s $(git -C $src log --oneline -1 | cut -c1-7)" >> $R/summary.txt
done
