"""The label scheme every part of the project agrees on."""

ID2LABEL = {0: "negative", 1: "positive"}
LABEL2ID = {name: idx for idx, name in ID2LABEL.items()}
