"""The stakeholder report: self-contained HTML and a PDF printed from it (see ``build``)."""
