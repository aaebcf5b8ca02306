"""The tutorial's trainer (shared/reference), ported to Ray 2.60 with nothing tuned.

`tune.run(args.run, config={"env": ..., "num_workers": ..., "ignore_worker_failures": True})`
no longer runs: the string name imports every algorithm, the legacy keys raise, and
`_redis_password` is gone. This is the smallest faithful port: RLlib PPO with RLlib's
default hyperparameters and one env runner, run through Tune. It prints one line per
iteration ("ITER <n> <env steps> <mean return>") for bench/solve_time.py to time.
"""

import argparse
import logging
import os
import sys

# The same environment hygiene as the launcher: RLlib imports TensorFlow whenever it is
# installed, which costs seconds of startup that have nothing to do with the config.
os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")

import ray
from ray import tune
from ray.rllib.algorithms.ppo import PPO, PPOConfig


class PrintIterations(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        runners = result.get("env_runners", {})
        print("ITER", result["training_iteration"], runners.get("num_env_steps_sampled_lifetime"),
              runners.get("episode_return_mean"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop-reward", type=float, default=475)
    parser.add_argument("--stop-iters", type=int, default=200)
    parser.add_argument("--smoothing", type=int, default=20)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args()
    ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    config = (
        PPOConfig()
        .environment(args.env)
        .env_runners(num_env_runners=1)  # the tutorial's single-core run: --num-cpus 1
        .fault_tolerance(ignore_env_runner_failures=True)
        .reporting(metrics_num_episodes_for_smoothing=args.smoothing)
        .debugging(seed=args.seed)
    )
    tune.run(
        PPO,
        config=config.to_dict(),
        stop={"env_runners/episode_return_mean": args.stop_reward,
              "training_iteration": args.stop_iters},
        storage_path=args.storage,
        verbose=0,
        callbacks=[PrintIterations()],
    )
    ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
