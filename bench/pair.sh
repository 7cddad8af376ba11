#!/usr/bin/env bash
# Compares the BB84 pipeline of two builds on this (noisy, shared) machine: both run AT THE SAME TIME, each pinned
# to its own core, and the cores are swapped every round, so host slowdowns hit both alike.
#
#   bench/pair.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS] [bench options...]
#   e.g. bench/pair.sh /tmp/old . 4 --blocks 20 --warmup 8
#
# Each checkout must be built (npm run build). Prints one line per build and round: sifted Mbit/s, sifted Mbit per
# CPU second, median and slowest block, and Alice's per-stage ms (her stages include Bob's handling).
set -euo pipefail
old=${1:?usage: bench/pair.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS] [bench options...]}
new=${2:?usage: bench/pair.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS] [bench options...]}
rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
[ "$#" -gt 0 ] || set -- --blocks 20 --warmup 8
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
summary='let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const line=s.split("\n").filter(l=>l.startsWith("{")).pop();if(!line){console.log(process.argv[1],"no result");return}const p=JSON.parse(line).pipeline[0];console.log(process.argv[1].padEnd(4),"sifted Mbit/s",p.siftedMbitPerS,"per CPU s",p.siftedMbitPerCpuS,"median ms",p.medianBlockMs,"slowest",p.maxBlockMs,JSON.stringify(p.aliceStageMs))})'
for i in $(seq 1 "$rounds"); do
  a=$(( i % 2 )); b=$(( 1 - a ))
  taskset -c "$a" node "$old/dist/bench/bb84.js" --only pipeline --auth hmac "$@" > "$tmp/old" 2>/dev/null &
  taskset -c "$b" node "$new/dist/bench/bb84.js" --only pipeline --auth hmac "$@" > "$tmp/new" 2>/dev/null &
  wait
  node -e "$summary" old < "$tmp/old"
  node -e "$summary" new < "$tmp/new"
done
