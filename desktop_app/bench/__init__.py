"""Benchmarks behind ``fdface bench``: the recognition pipeline over a video (:mod:`.pipeline`) and the paper's nets
under ONNX Runtime (:mod:`.nets`). Not part of the runtime core: the app and the core never import this package;
the CLI imports it lazily when a benchmark is asked for."""
