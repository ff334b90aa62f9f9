"""The pipeline's stages, one module each; each declares ``STAGE`` (:class:`~leukoscope.pipeline.stage.StageSpec`)
and none imports another (:mod:`leukoscope.pipeline.graph` wires them)."""
