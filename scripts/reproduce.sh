#!/usr/bin/env bash
# make reproduce [STAGES="pendulum fashion-mnist same-init gd-fashion-mnist fashion-mnist-to-gd fashion-mnist-pgpe
#                         mnist pendulum-baselines fashion-mnist-400"] [JOBS=2]: the experiments of
# docs/REPRODUCTION.md at the budgets stated there, then their figures and tables into docs/figures/.
#
# Resumable: every experiment is a sweep (finished points skipped, partial ones resumed from their last
# checkpoint) or a run file that `esprune resume` continues, and `connect` and `flatness` keep each finished item
# (PREFIX.partial.json), so the same command picks up where an interrupted one stopped. The figures and tables
# are redrawn from whatever has finished (a stage's report shows how many seeds each curve has). Not part of
# `make test`. `scripts/reproduce.sh --status` (make reproduce-status) says how far each experiment has got.
set -euo pipefail
ES=${ES:-.venv/bin/esprune}
JOBS=${JOBS:-2}
STAGE_NAMES="pendulum fashion-mnist same-init gd-fashion-mnist fashion-mnist-to-gd fashion-mnist-pgpe mnist"
STAGE_NAMES+=" pendulum-baselines fashion-mnist-400"
if [ -n "${STAGES+set}" ] && [ -z "${STAGES//[[:space:]]/}" ]; then  # set but empty: a mistake, not "all" (hours)
    echo "reproduce: STAGES is empty; name stages from: $STAGE_NAMES (or leave STAGES unset for all)" >&2; exit 2
fi
STAGES=${STAGES-$STAGE_NAMES}
FIG=docs/figures
# the MNIST family: $ESPRUNE_DATA, else the ../shared/data the test suite also looks in, else esprune's defaults
if [ -z "${ESPRUNE_DATA:-}" ] && [ -d ../shared/data ]; then export ESPRUNE_DATA=$(cd ../shared/data && pwd); fi
mkdir -p "$FIG"

say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

if [ $# -gt 1 ] || { [ $# = 1 ] && [ "$1" != --status ]; }; then  # a typo must not start hours of runs
    echo "reproduce: unknown argument(s) $*; the only one is --status (stages are chosen with STAGES=...)" >&2
    exit 2
fi
if ! command -v "$ES" >/dev/null; then
    echo "reproduce: $ES not found; run make setup first (or set ES to an esprune executable)" >&2
    exit 2
fi

# scripts/reproduce.sh --status (make reproduce-status): how far every experiment has got, running nothing.
if [ "${1:-}" = "--status" ]; then
    found=0
    for d in sweeps/repro-*/; do
        [ -d "$d" ] || continue
        found=1
        printf '\n== %s\n' "${d%/}"
        "$ES" sweep status "$d" || true
    done
    [ "$found" = 1 ] || echo "reproduce: nothing started yet (no sweeps/repro-*); run make reproduce"
    for grid in $("$ES" sweep presets | awk '$1 ~ /^repro-/ {print $1}'); do
        [ -d "sweeps/$grid" ] || printf '\n== sweeps/%s: not started\n' "$grid"
    done
    exit 0
fi

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
    say "Pendulum-v1: linear mode connectivity, consecutive sparsities and pairs of seeds, 3 seeds (finding 4)"
    connect_seeds "$d" snr pendulum-connect
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

fashion_mnist_400() {
    local d=sweeps/repro-fashion-mnist-400 short=sweeps/repro-fashion-mnist
    say "Fashion-MNIST (SNES) at 400 generations: snr vs magnitude, 3 seeds (finding 1: does a longer budget part them?)"
    "$ES" sweep start --preset repro-fashion-mnist-400 --jobs "$JOBS" --quiet
    # beside the 100-generation snr and magnitude runs of the same seeds and inits
    "$ES" report "$d" "$short"/seed={0,1,2}__prune={snr,magnitude}.h5 -o "$FIG/fashion-mnist-400-tickets.png" \
        --at paper
    "$ES" snr "$d/seed=0__prune=snr.h5" --out "$FIG/fashion-mnist-400-snr"
}

same_init_stage() {
    say "Pendulum-v1: the same tickets of seeds 0-2 trained again with other ES noise, tickets 0..15 (finding 4)"
    same_init sweeps/repro-pendulum sweeps/repro-pendulum-lmc pendulum --iterations 15
    say "Fashion-MNIST: the same tickets of seeds 0-2 trained again with other SNES noise and batches (finding 4)"
    same_init sweeps/repro-fashion-mnist sweeps/repro-fashion-mnist-lmc fashion-mnist
}

# Linear mode connectivity of two trainings from one init: the snr tickets (init + mask) of seed s in sweep $1
# trained again with other ES noise (seed s + 1) into $2, then connected; $3 names the figures; the rest
# (--iterations N) goes to the transfer. Seed 0's figure keeps its first name (...-same-init), seeds 1-2 add -sS.
same_init() {
    local d=$1 out=$2 name=$3
    shift 3
    mkdir -p "$out"
    for seed in 0 1 2; do
        local lmc="$out/snr-seed$seed-init_trained-seed$((seed + 1)).h5" fig="$FIG/$name-connect-same-init"
        [ "$seed" = 0 ] || fig="$fig-s$seed"
        run_or_resume "$lmc" "$ES" transfer "$d/seed=${seed}__prune=snr.h5" --seed $((seed + 1)) "$@"
        connect_to "$fig" "$d/seed=${seed}__prune=snr.h5" "$lmc"
    done
}

# Consecutive sparsities of seeds 0-2 ($3-consecutive, -s1, -s2) and the pairs of seeds 0-1, 0-2, 1-2 at equal
# sparsity ($3-seeds, -0-2, -1-2) of the $2 runs in sweep $1.
connect_seeds() {
    local d=$1 prune=$2 name=$3 seed pair a b fig
    for seed in 0 1 2; do
        fig="$FIG/$name-consecutive"
        [ "$seed" = 0 ] || fig="$fig-s$seed"
        connect_to "$fig" "$d/seed=${seed}__prune=$prune.h5" --consecutive
    done
    for pair in 0-1 0-2 1-2; do
        a=${pair%-*} b=${pair#*-} fig="$FIG/$name-seeds"
        [ "$pair" = 0-1 ] || fig="$fig-$pair"
        connect_to "$fig" "$d/seed=${a}__prune=$prune.h5" "$d/seed=${b}__prune=$prune.h5"
    done
}

# esprune connect ARGS --out $1, unless $1.json is newer than every run file in ARGS (as make would): a rerun of
# a stage redraws only what its runs changed. A stopped connect continues from $1.partial.json.
connect_to() {
    local out=$1 arg
    shift
    if [ -f "$out.json" ]; then
        local stale=0
        for arg in "$@"; do
            if [[ "$arg" == *.h5 ]] && [ "$arg" -nt "$out.json" ]; then stale=1; fi
        done
        if [ "$stale" = 0 ]; then echo "$out: up to date"; return; fi
    fi
    "$ES" connect "$@" --out "$out"
}

gd_fashion_mnist() {
    local es=sweeps/repro-fashion-mnist gd=sweeps/repro-gd-fashion-mnist
    say "Fashion-MNIST: GD-IMP (Adam 3e-4, batch 128, 2 epochs), magnitude and random-reinit, 3 seeds (finding 2)"
    "$ES" sweep start --preset repro-gd-fashion-mnist --jobs "$JOBS" --quiet
    "$ES" report "$es" "$gd" -o "$FIG/fashion-mnist-es-vs-gd.png" --at paper
    say "Fashion-MNIST: linear mode connectivity of ES and GD solutions, consecutive and pairs of seeds (finding 4)"
    connect_seeds "$es" snr fashion-mnist-connect-es
    connect_seeds "$gd" magnitude fashion-mnist-connect-gd
    # ES (snr) and GD (magnitude) solutions of the same init at equal sparsity: the paper's ES-vs-GD pair, 3 seeds
    for seed in 0 1 2; do
        connect_to "$FIG/fashion-mnist-connect-es-gd-s$seed" "$es/seed=${seed}__prune=snr.h5" \
            "$gd/seed=${seed}__prune=magnitude.h5"
    done
    say "Fashion-MNIST: flatness (top Hessian eigenvalues, trace, sharpness) of ES vs GD solutions, 3 seeds (finding 4)"
    local its="--iteration 0 --iteration 5 --iteration 10 --iteration 15 --iteration 20"
    # shellcheck disable=SC2086
    "$ES" flatness "$es"/seed={0,1,2}__prune=snr.h5 "$gd"/seed={0,1,2}__prune=magnitude.h5 $its \
        --out "$FIG/fashion-mnist-flatness"
}

fashion_mnist_to_gd() {
    local es=sweeps/repro-fashion-mnist gd=sweeps/repro-gd-fashion-mnist t=sweeps/repro-transfer
    say "Fashion-MNIST: ES -> GD transfer, SNES snr tickets trained by Adam as GD-IMP's, 3 seeds (finding 3)"
    mkdir -p "$t"
    for seed in 0 1 2; do
        run_or_resume "$t/fashion-mnist-snr-s$seed-to-gd.h5" "$ES" transfer "$es/seed=${seed}__prune=snr.h5" \
            --trainer gd --gd-option epochs=2 --gd-option lr=3e-4 --gd-option batch_size=128
    done
    "$ES" report "$t"/fashion-mnist-snr-s{0,1,2}-to-gd.h5 "$gd" -o "$FIG/fashion-mnist-transfer-es-to-gd.png" --at paper
}

# The fashion-mnist-pgpe preset's PGPE (the paper's tuned PGPE, evosax 0.1.4's σ rule): a transfer to another
# strategy starts from that strategy's defaults, so the options the target grid runs with are given here.
PGPE_OPTIONS=(--strategy-option centered_rank=true --strategy-option lrate_init=0.01
              --strategy-option lrate_decay=0.999 --strategy-option lrate_limit=0.001
              --strategy-option sigma_init=0.05 --strategy-option sigma_decay=0.999
              --strategy-option sigma_limit=0.01 --strategy-option mean_decay=1e-4
              --strategy-option ties=index --strategy-option sigma_rule=evosax-0.1.4)

fashion_mnist_pgpe() {
    local es=sweeps/repro-fashion-mnist pgpe=sweeps/repro-pgpe-fashion-mnist t=sweeps/repro-transfer
    # the transfer's comparison first (PGPE's own snr and random-reinit, then the transfer), magnitude last
    say "Fashion-MNIST (PGPE): snr and random-reinit, 3 seeds (the SNES -> PGPE target curves, finding 3)"
    "$ES" sweep start --preset repro-pgpe-fashion-mnist --only prune=snr --only prune=random-reinit --jobs "$JOBS" \
        --quiet
    say "Fashion-MNIST: ES -> ES transfer, SNES snr tickets trained by PGPE, 3 seeds (finding 3)"
    mkdir -p "$t"
    for seed in 0 1 2; do
        run_or_resume "$t/fashion-mnist-snr-s$seed-to-pgpe.h5" "$ES" transfer "$es/seed=${seed}__prune=snr.h5" \
            --strategy pgpe "${PGPE_OPTIONS[@]}"
    done
    # the target's snr and random-reinit runs by name: the figure is the same whether magnitude has run yet or not
    "$ES" report "$t"/fashion-mnist-snr-s{0,1,2}-to-pgpe.h5 "$pgpe"/seed={0,1,2}__prune={snr,random-reinit}.h5 \
        -o "$FIG/fashion-mnist-transfer-snes-to-pgpe.png" --at paper
    say "Fashion-MNIST (PGPE): magnitude too, 3 seeds: snr vs magnitude vs random-reinit (finding 1)"
    "$ES" sweep start --preset repro-pgpe-fashion-mnist --jobs "$JOBS" --quiet
    "$ES" report "$pgpe" -o "$FIG/fashion-mnist-pgpe-tickets.png" --at paper
    say "Fashion-MNIST (PGPE): the SNR study of seed 0's snr run (finding 5: does PGPE's σ part snr from magnitude?)"
    "$ES" snr "$pgpe/seed=0__prune=snr.h5" --out "$FIG/fashion-mnist-pgpe-snr"
}

mnist() {
    local es=sweeps/repro-fashion-mnist mn=sweeps/repro-mnist t=sweeps/repro-transfer
    say "MNIST (SNES): snr vs random-reinit, 3 seeds (finding 3's target curves)"
    "$ES" sweep start --preset repro-mnist --jobs "$JOBS" --quiet
    say "Fashion-MNIST -> MNIST transfer: the SNES snr tickets trained on MNIST by the same SNES, 3 seeds (finding 3)"
    mkdir -p "$t"
    for seed in 0 1 2; do  # a new task starts from its default options: the batch of the target grid again
        run_or_resume "$t/fashion-mnist-snr-s$seed-to-mnist.h5" "$ES" transfer "$es/seed=${seed}__prune=snr.h5" \
            --task mnist --task-option batch_size=256
    done
    "$ES" report "$t"/fashion-mnist-snr-s{0,1,2}-to-mnist.h5 "$mn" -o "$FIG/fashion-mnist-transfer-to-mnist.png" --at paper
}

for stage in $STAGES; do  # every name checked before hours of work start
    case " $STAGE_NAMES " in
        *" $stage "*) ;;
        *) echo "reproduce: unknown stage $stage (stages, separated by spaces: $STAGE_NAMES)" >&2; exit 2 ;;
    esac
done
for stage in $STAGES; do
    case "$stage" in
        pendulum) pendulum ;;
        fashion-mnist) fashion_mnist ;;
        same-init) same_init_stage ;;
        pendulum-baselines) pendulum_baselines ;;
        fashion-mnist-400) fashion_mnist_400 ;;
        gd-fashion-mnist) gd_fashion_mnist ;;
        fashion-mnist-to-gd) fashion_mnist_to_gd ;;
        fashion-mnist-pgpe) fashion_mnist_pgpe ;;
        mnist) mnist ;;
        *) exit 2 ;;  # checked above
    esac
done
say "done: figures and tables in $FIG/, the findings in docs/REPRODUCTION.md"
