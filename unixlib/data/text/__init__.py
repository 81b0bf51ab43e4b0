"""Report text: sections and rule cleaning (``reports``, ``reports_deid``, ``reports_compare``),
LLM cleaning (``llm_clean``, ``prompts``), the self-judgment (``judge``), the CheXpert-style
labeler (``labeler``, ``labeler_rules``) and its IU X-ray check (``iu_mesh``), and the
tokenizer.
"""
