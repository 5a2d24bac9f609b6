#!/usr/bin/env bash
# On a lent GPU (device tool), carrying runs/gpu (a quickstart world + zoo) and .whl:
# trains teacher_long and teacher4 of research/teacher_gpu/teacher_gpu_long.yaml side by side within
# TRAIN_S seconds, saves cut-off roles from their checkpoints, and packs the models into $OUT.
# Rerunning it resumes both roles from their checkpoints: on the same warm machine, call it again
# WITHOUT carrying runs/gpu (a carried copy would replace the checkpoints there).
# DRY=1 runs a few steps on CPU (to test this script).
set -u
G=${G:-runs/gpu}
CFG=research/teacher_gpu/teacher_gpu_long.yaml
TRAIN_S=${TRAIN_S:-430}
if [ -d .whl ] && [ -z "${DRY:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1
if [ -n "${DRY:-}" ]; then
  python3 - "$CFG" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["device"] = "cpu"; c["eval_examples"] = 4
c["roles"]["teacher_long"]["sft"].update(steps=6, batch_size=4, checkpoint_every=2, data_workers=2)
c["roles"]["teacher4"]["sft"].update(text_steps=2, steps=6, batch_size=4, checkpoint_every=2, data_workers=2)
yaml.safe_dump(c, open("/tmp/teacher_gpu_dry.yaml", "w"))
PY
  CFG=/tmp/teacher_gpu_dry.yaml
fi
nvidia-smi -L 2>/dev/null; python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
[ -d $G/zoo4 ] || cp -r $G/zoo $G/zoo4
rm -rf $G/zoo/teacher_long_partial $G/zoo4/teacher4_partial
iapo() { python3 -c 'import sys; from iapo.cli import main; sys.argv[0] = "iapo"; main()' "$@"; }
(timeout $TRAIN_S bash -c "$(declare -f iapo); iapo sft --world $G/world --out $G/zoo --config $CFG --roles teacher_long" > $OUT/teacher_long.log 2>&1; echo "exit $?" >> $OUT/teacher_long.log) &
(timeout $TRAIN_S bash -c "$(declare -f iapo); iapo sft --world $G/world --out $G/zoo4 --config $CFG --roles teacher4" > $OUT/teacher4.log 2>&1; echo "exit $?" >> $OUT/teacher4.log) &
wait
python3 research/teacher_gpu/salvage.py --zoo $G/zoo --config $CFG --role teacher_long
python3 research/teacher_gpu/salvage.py --zoo $G/zoo4 --config $CFG --role teacher4
for r in teacher_long teacher4; do
  z=$G/zoo; [ $r = teacher4 ] && z=$G/zoo4
  (cd $z && tar -cf $OUT/$r.tar $(ls -d $r $r"_partial" runs/$r/*/metrics.jsonl zoo.json 2>/dev/null))
done
grep -h -E "exit|accuracy|Error|error" $OUT/*.log | tail -20
ls -la $OUT
