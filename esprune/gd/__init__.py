"""The gradient-descent reference: exact numpy backprop of esprune's masked networks, Adam/SGD, supervised
training, PPO for control, SNIP/GraSP scores and Hessian-vector products. No autodiff framework."""
from .objective import Objective, hessian_vector_product
from .trainer import TrainResult
from .trainer import make as make_trainer
from .trainer import network

__all__ = ["Objective", "hessian_vector_product", "TrainResult", "make_trainer", "network"]
