"""trainyard benchmark suite: every speed that matters, side by side with a baseline, against targets.

    python -m bench [--quick] [--only throughput,datapath,import,api,dispatch,events,memory,recommend] [--gpu]

Results go to bench/results/latest.json and bench/results/latest.md (git-ignored).
"""
