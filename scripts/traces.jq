# A guard's published reasoning trace (a GuardReasoner generated_predictions.jsonl
# record: prompt, label, predict) -> an alpaca reasoning record (id, instruction, input,
# output, label, source), as the R-SFT data is. Used by scripts/pipeline.mk (TRACES=).
#   jq -c --arg set BENCH --arg task request|completion|response --argjson keep true|false \
#      [--argjson max_chars N] [--argjson max_output_chars N]
# The prompt is instruction + "\n" + input, split before "Human user:". With keep true,
# only traces whose answer for TASK agrees with the gold label are passed (the paper's
# synthesis keeps only label-consistent answers); the answer is read as gr-eval reads
# it: the first "Request: harmful|unharmful" (Completion: refusal|compliance,
# Response: ...) in the last 300 characters, case-insensitive. A benchmark labels one
# task, so the trace's other two answers are the 1B model's own, not checked.
# label becomes {TASK: gold}, which gr-eval reads by task. With keep true and max_chars
# N > 0, traces whose prompt and answer together are longer than N characters are left
# out (a short cutoff keeps whole traces, answer block included); with max_output_chars N
# > 0, so are the traces longer than N characters.
def answer($task):
  (if $task == "completion" then "completion:\\s*(?<a>refusal|compliance)"
   else "\($task):\\s*(?<a>harmful|unharmful)" end) as $re
  | [.[-300:] | match($re; "i") | .captures[0].string | ascii_downcase] | first;
(.prompt | index("\nHuman user:\n")) as $cut
| if $cut == null then error("\($set):\(input_line_number): no \"Human user:\" in the prompt") else . end
| select(($keep | not) or ((.predict | answer($task)) == (.label | ascii_downcase)
          and (($ARGS.named.max_chars // 0) <= 0 or (.prompt | length) + (.predict | length) <= $ARGS.named.max_chars)
          and (($ARGS.named.max_output_chars // 0) <= 0 or (.predict | length) <= $ARGS.named.max_output_chars)))
| {id: "\($set):\(input_line_number)", instruction: .prompt[:$cut], input: .prompt[$cut + 1:],
   label: {($task): .label}, source: $set}
  + (if $keep then {output: .predict} else {} end)
