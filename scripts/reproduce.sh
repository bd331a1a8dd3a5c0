#!/usr/bin/env bash
# make reproduce [STAGES="pendulum fashion-mnist pendulum-baselines"] [JOBS=2]: the experiments of docs/REPRODUCTION.md at the
# budgets stated there, then their figures and tables into docs/figures/.
#
# Resumable: every experiment is a sweep (finished points skipped, partial ones resumed from their last
# checkpoint) or a run file that `esprune resume` continues, so the same command picks up where an interrupted
# one stopped. The figures and tables are redrawn from whatever has finished (a stage's report shows how many
# seeds each curve has). Not part of `make test`.
set -euo pipefail
ES=${ES:-.venv/bin/esprune}
JOBS=${JOBS:-2}
STAGES=${STAGES:-pendulum fashion-mnist pendulum-baselines}
FIG=docs/figures
# the MNIST family: $ESPRUNE_DATA, else the ../shared/data the test suite also looks in, else esprune's defaults
if [ -z "${ESPRUNE_DATA:-}" ] && [ -d ../shared/data ]; then export ESPRUNE_DATA=$(cd ../shared/data && pwd); fi
mkdir -p "$FIG"

say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# The run file $1 continued where it stopped (a no-op once finished), or made by the rest of the command line.
run_or_resume() {
    local out=$1; shift
    if [ -f "$out" ]; then "$ES" resume "$out" --quiet; else "$@" --out "$out" --quiet; fi
}

pendulum() {
    local d=sweeps/repro-pendulum
    say "Pendulum-v1: snr vs magnitude vs random-reinit, 3 seeds (finding 1)"
    "$ES" sweep start --preset repro-pendulum --jobs "$JOBS" --quiet
    "$ES" report "$d" -o "$FIG/pendulum-tickets.png" --at paper
    say "Pendulum-v1: the SNR study of seed 0's snr run (finding 5)"
    "$ES" snr "$d/seed=0__prune=snr.h5" --out "$FIG/pendulum-snr"
    say "Pendulum-v1: linear mode connectivity, consecutive sparsities and seeds 0-1 (finding 4)"
    "$ES" connect "$d/seed=0__prune=snr.h5" --consecutive --out "$FIG/pendulum-connect-consecutive"
    "$ES" connect "$d/seed=0__prune=snr.h5" "$d/seed=1__prune=snr.h5" --out "$FIG/pendulum-connect-seeds"
    # the same tickets (init + mask) of seed 0 trained again with other ES noise (seed 1): connectivity of two
    # trainings from one init, the usual linear-mode-connectivity test, for tickets 0..15
    local lmc=sweeps/repro-pendulum-lmc/snr-seed0-init_trained-seed1.h5
    mkdir -p sweeps/repro-pendulum-lmc
    run_or_resume "$lmc" "$ES" transfer "$d/seed=0__prune=snr.h5" --seed 1 --iterations 15
    "$ES" connect "$d/seed=0__prune=snr.h5" "$lmc" --out "$FIG/pendulum-connect-same-init"
    say "Pendulum-v1: sharpness profiles of seed 0's snr solutions (finding 4; no Hessian for control tasks)"
    "$ES" flatness "$d/seed=0__prune=snr.h5" --out "$FIG/pendulum-flatness"
}

pendulum_baselines() {
    say "Pendulum-v1: the permute and mask-reinit baselines, 3 seeds (finding 1)"
    "$ES" sweep start --preset repro-pendulum-baselines --jobs "$JOBS" --quiet
    "$ES" report sweeps/repro-pendulum sweeps/repro-pendulum-baselines -o "$FIG/pendulum-baselines.png" --at paper
}

fashion_mnist() {
    local d=sweeps/repro-fashion-mnist
    say "Fashion-MNIST (SNES): snr vs magnitude vs random-reinit, 3 seeds (finding 1)"
    "$ES" sweep start --preset repro-fashion-mnist --jobs "$JOBS" --quiet
    "$ES" report "$d" -o "$FIG/fashion-mnist-tickets.png" --at paper
    say "Fashion-MNIST: the SNR study of seed 0's snr run (finding 5)"
    "$ES" snr "$d/seed=0__prune=snr.h5" --out "$FIG/fashion-mnist-snr"
}

for stage in $STAGES; do
    case "$stage" in
        pendulum) pendulum ;;
        fashion-mnist) fashion_mnist ;;
        pendulum-baselines) pendulum_baselines ;;
        *) echo "reproduce: unknown stage $stage (stages: pendulum fashion-mnist pendulum-baselines)" >&2; exit 2 ;;
    esac
done
say "done: figures and tables in $FIG/, the findings in docs/REPRODUCTION.md"
