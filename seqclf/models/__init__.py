"""Model families as plugins: one module per family, found by ``registry``.

A family module (``seqclf/models/<family>.py``) holds:

* ``Config``: its config schema, a ``seqclf.sections.FamilyConfig`` subclass with
  ``family: Literal["<family>"]`` (plus the mixins it needs: ``RecurrentLayers``,
  ``DenseHead``, ``TokenInput``, ``convolution.ConvBlocks``). ``seqclf.config`` makes the
  ``model`` section a union of these, told apart by ``family``; the YAML stays flat.
* ``features(k, m, prep, x)``: the family's body on the masked input, returning the
  features the softmax reads (``seqclf.model.build_model`` adds input, masking, the dense
  head and the softmax around it).

and may hold:

* ``fit(build, x, y, x_val, y_val, cfg)``: training without gradient descent (closed
  form), used by ``seqclf.fitting.fit_model`` instead of ``model.fit``. ``build(**keys)``
  builds the compiled model, the keyword arguments replacing ``model`` keys (a choice
  made from the data that changes its shape); returns the fitted model and history
  columns. The training keys of gradient descent (early stopping, the learning-rate
  schedule, random crops) do not apply to it, and ``training.loss: focal`` and
  ``training.sampling: oversample`` are refused. A ``sample_weight`` argument takes
  ``training.class_weight`` (refused without one); ``training.calibration`` folds its
  temperature into the fitted ``classes`` layer afterwards, as for any family.
* ``combine(k, models)``: one model from separately trained members (``ensemble``), with
  the config's ``member_sections(seed)`` naming them.
* ``cudnn_reasons(m, cfg)``: why Keras would not run its recurrent layers on cuDNN.
* ``describe(m)``: a few words for ``seqclf train``'s first line.

Registered Keras layers live in ``layers.py`` (shared) or ``<family>_layers.py``; no
family module imports Keras at import time, so the config stays fast to load.
"""
