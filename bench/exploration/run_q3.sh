#!/bin/bash
# usage: run_q3.sh NAME ARGS...   (logs to $EDGEPACK_EXPLORATION_CACHE/logs/NAME.log)
cd "$(dirname "$0")"
logs="${EDGEPACK_EXPLORATION_CACHE:-$HOME/.cache/edgepack-exploration}/logs"
mkdir -p "$logs"
n=$1; shift
../../.venv/bin/python train.py --name "$n" "$@" 2>&1 | grep --line-buffered -v "^W11\|Failed to load" > "$logs/$n.log"
