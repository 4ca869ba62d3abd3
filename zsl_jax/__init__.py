"""Generative zero-shot learning: GAZSL (Zhu et al., CVPR 2018) and CIZSL (Elhoseiny & Elfeki, ICCV 2019).

A generator turns a class description (Wikipedia TF-IDF, attributes, or sentence/CLIP text features)
plus noise into visual features; unseen classes are then recognised by nearest neighbours among
generated features. `modes.MODES` lists what `main.py --mode` can run.
"""
