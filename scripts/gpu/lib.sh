# Shell helpers shared by the scripts that run ON the GPU server (sourced, not run).

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

# Like peak_mem, for a GPU that other processes share: prints "ALL APP", the maximum of the whole
# GPU's used memory and of the given pid's own (nvidia-smi --query-compute-apps; "n/a" where the
# driver does not list that pid, e.g. in another PID namespace), in MiB.
peak_mem_app() {
  local pid=$1 max=0 app=n/a v a
  while kill -0 "$pid" 2>/dev/null; do
    v=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "$v" -gt "$max" ] && max=$v
    a=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null | awk -F', *' -v p="$pid" '$1 == p {print $2}' | head -1)
    if [ -n "$a" ] && { [ "$app" = n/a ] || [ "$a" -gt "$app" ]; }; then app=$a; fi
    sleep 0.5
  done
  echo "$max $app"
}
