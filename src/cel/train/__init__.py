"""Training: the one :class:`Trainer` (parameterised by a Task and a Feed, with named callback
events), the CEL cluster schedule and gradient averaging as callbacks, and the run driver."""
from cel.train.feeds import FEEDS, Batch, FeedConfig, InteractionTable, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.replay_feed import ReplayStreamFeed, register as _register_replay
from cel.train.schedule import ClusterSchedule
from cel.train.tasks import TASKS, Conversion, Regression, Task
from cel.train.trainer import Callback, Trainer, full_batch_trainer

_register_replay()          # the ``replay`` feed (CEL-Lite's stream with experience replay) joins FEEDS

__all__ = ["FEEDS", "TASKS", "Batch", "Callback", "ClusterSchedule", "Conversion", "FeedConfig", "GradientAveraging",
           "InteractionTable", "Regression", "ReplayStreamFeed", "Task", "Trainer", "full_batch_trainer", "make_feed"]
