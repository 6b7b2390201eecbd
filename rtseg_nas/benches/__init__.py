"""Benches about the method, not stages of the pipeline: how well the search's proxies rank
architectures (:mod:`.proxy`, with the training-free SynFlow score in :mod:`.synflow`) and the
models the kernel latency predictor is built from and judged on (:mod:`.latency_models`).
Only the app's verbs (``bench --proxy``, ``bench --latency-predictor``, ``latency-table build``) use them.
"""
