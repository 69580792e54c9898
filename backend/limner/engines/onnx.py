"""ONNX Runtime sessions made one way for every engine that runs an ONNX network."""

from __future__ import annotations


def session(path: str):
    """A CPU session on the backend's cores (threads.count()), without ONNX Runtime's
    memory arena: the arena keeps the largest run's buffers for the process's life, and
    grows on later runs (the style network held 1.2 GB after two 1024 px runs, and RVM
    150 MB more than it needed after a 2048 px matte); without it a run's buffers go back
    when it ends, at a lower peak, as fast after the first run."""
    import onnxruntime

    from .. import threads

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    if threads.count():
        options.intra_op_num_threads = threads.count()
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
