#!/usr/bin/env bash
# The progress of both pipelines: seconds since T0, each gpu.log's last lines, each run's last step line.
echo "t = $(( $(date +%s) - $(cut -d= -f2 /root/t0) )) s since T0"; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
for t in dcodi deep; do
  echo "== $t"; grep -v '^step' /root/$t-out/gpu.log | tail -4 | cut -c1-250
  for f in /root/$t-work/logs/*.log; do echo "$(basename $f): $(grep '^step' $f | tail -1 | cut -c1-170)"; done
done
