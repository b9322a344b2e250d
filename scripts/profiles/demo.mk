# demo: the README's first command - the whole chain (data, R-SFT, a diversity model,
# k samples, mining, HS-DPO, classification, scoring) in a few minutes on 2 cores,
# ending in verdicts and the F1 table. The ci profile's settings: the model learns the
# answer block from the published traces that are an answer alone, so it shows the
# machinery, not a useful guard; PROFILE=tiny trains one with reasoning.
include $(ROOT)/scripts/profiles/ci.mk
SHOW_VERDICTS = 4
