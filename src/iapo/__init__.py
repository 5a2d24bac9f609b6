"""iapo: train small vision-language agents to use visual tools with RL.

Reference implementation of IAPO, Input Attribution-Aware Policy Optimization (arXiv 2606.11652).
Data flows one way: config -> world/data -> rollout -> rewards (incl. attribution) -> policy update
-> eval -> report.
"""

__version__ = "0.5.0"
