#!/usr/bin/env bash
# Prints, for each layer of src/ (DESIGN's list, bottom up), the farthest-up layer its files
# include, and every include that climbs (a file including a layer above its own). Exits 1 if
# any include climbs. A public header belongs to the layer of the source file of its name
# (ipckit/ring.hpp: src/rings/ring.cpp); the few without one are listed below.
set -euo pipefail
cd "$(dirname "$0")/.."

layers=(core mechanisms sync rings channels admin bridges capi)
rank() { local i; for i in "${!layers[@]}"; do [[ ${layers[$i]} == "$1" ]] && echo "$i" && return; done; echo -1; }

# The public headers with no source file of their name.
declare -A extra=(
  [ipckit/shm_safe.hpp]=mechanisms [ipckit/detail/sleeper.hpp]=sync [ipckit/wait_mode.hpp]=rings
  [ipckit/loan.hpp]=rings [ipckit/service_types.hpp]=rings [ipckit/nats.hpp]=channels
  [ipckit/ipckit.h]=capi)

layer_of() {  # an include's text, the including file -> its layer
  local inc=$1 file=$2
  case $inc in
    ipckit/*)
      [[ -n ${extra[$inc]:-} ]] && { echo "${extra[$inc]}"; return; }
      local name; name=$(basename "$inc" .hpp)
      local src; src=$(ls src/*/"$name".cpp 2>/dev/null | head -1)
      [[ -n $src ]] && { basename "$(dirname "$src")"; return; }
      echo "?"; return ;;
    */*) echo "${inc%%/*}"; return ;;
    *) basename "$(dirname "$file")" ;;  # a file of its own folder
  esac
}

status=0
for own in "${layers[@]}"; do
  top=$own
  while IFS=: read -r file inc; do
    inc=${inc#*\"}; inc=${inc%\"*}
    if [[ $inc == ../* ]]; then echo "  climbs out of its folder: $file: $inc"; status=1; continue; fi
    l=$(layer_of "$inc" "$file")
    [[ $l == "?" ]] && { echo "  unknown layer: $file: $inc"; status=1; continue; }
    (( $(rank "$l") > $(rank "$top") )) && top=$l
    if (( $(rank "$l") > $(rank "$own") )); then echo "  climbs: $file includes $inc ($l)"; status=1; fi
  done < <(grep -o '#include "[^"]*"' -r "src/$own" --include='*.cpp' --include='*.hpp' | sed 's/#include //')
  printf '%-11s farthest-up include: %s\n' "$own" "$top"
done
exit $status
