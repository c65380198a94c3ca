"""The predict stage: CLV, churn and propensity models with model cards.

Model code is pure numpy/pandas/scipy/scikit-learn (``bgnbd``, ``gamma_gamma``, ``clv``,
``churn``, ``propensity``, ``leakage``, ``metrics``); ``data`` reads the warehouse and
``stage`` wires it all into ``predict_stage(settings, summary, progress)``. Nothing is
imported here, so using one model module does not load scikit-learn.
"""
