"""顺丰 丰桥 (SF Express open platform): intercepts (EXP_RECE_WANTED_INTERCEPT) and route pushes."""
