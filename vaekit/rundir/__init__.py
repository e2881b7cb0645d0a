"""The run directory: every file of a run is read and written here.

A run is a directory holding config.json, model.safetensors (weights of the last completed
epoch; with --ema their average), best.safetensors (best validation metric so far),
raw.safetensors (with --ema: the last epoch's weights as trained), state.pt (every optimizer, RNG and
loop state for --resume), metrics.jsonl, plots/, evaluation.json (``vaekit evaluate``) and
samplers/ (``vaekit fit-sampler``). Each file has one reader and one writer, and every write
is atomic (a temp file renamed into place).

- :mod:`.files`: file names, atomic writes, config, weights, training state, metrics.jsonl;
- :mod:`.evaluations`: evaluation.json;
- :mod:`.samplers`: samplers/;
- :mod:`.training`: training.json, present while a process trains the run.

This package sits below models, training, metrics and plots; all of them read and write a
run through it.
"""
from .evaluations import evaluation_key, evaluation_path, read_evaluations, save_evaluation  # noqa: F401
from .files import (CONFIG, WEIGHTS, BEST, RAW, STATE, METRICS, PLOTS, CHECKPOINTS, EVALUATION, SAMPLERS,  # noqa: F401
                    CARD, TRACKERS, read_trackers, write_trackers, atomic_write, is_stale_temp, remove_stale_temps,
                    require_writable, make_dir, write_failure, write_text, unreadable, read_json, save_weights,
                    load_weights, require_checkpoint, checkpoint_file, weights_fingerprint, save_state, load_state,
                    append_metrics, append_event, trim_metrics, read_metrics, is_run, saved_epoch,
                    has_checkpoint, require_run, read_config, write_config, new_run_dir)
from .samplers import fitted_samplers, read_sampler, sampler_files, write_sampler  # noqa: F401
from .training import TRAINING, training, training_now  # noqa: F401
