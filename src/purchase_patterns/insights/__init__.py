"""Insights: the analyze stage (EDA, segments, clusters, trends, preferences, affinity and
recommendations) over the marts, writing the ``analytics`` tables (see ``stage``)."""
