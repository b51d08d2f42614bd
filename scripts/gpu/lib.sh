# Shell helpers shared by the scripts that run ON the GPU machine (sourced, not run).

# Samples GPU memory every 0.5 s until the given pid exits; prints the maximum in MiB.
peak_mem() {
  local pid=$1 max=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "$v" -gt "$max" ] && max=$v
    sleep 0.5
  done
  echo "$max"
}
