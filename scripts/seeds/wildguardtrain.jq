# WildGuardTrain (allenai/wildguardmix, config wildguardtrain: 86,759 rows) ->
# gr-synth interaction records. Use: gr-synth --map "$(cat scripts/seeds/wildguardtrain.jq)"
# Fields: prompt, response (null for prompt-only rows), prompt_harm_label,
# response_refusal_label, response_harm_label; an empty label means "none".
def lab: if . == null or . == "" then null else . end;
{
  prompt: .prompt,
  response: (if .response == "" then null else .response end),
  label: {
    request: (.prompt_harm_label | lab),
    completion: (.response_refusal_label | lab),
    response: (.response_harm_label | lab)
  }
}
