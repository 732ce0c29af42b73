"""`perfscope analyze`: a torch.profiler (Kineto) trace, or a folder of per-rank traces, read as
a stream into compact events (`reader`), analysed on the device side (`device`), and turned into
the same `Record` a live run makes (`build`). docs/analyze.md."""
