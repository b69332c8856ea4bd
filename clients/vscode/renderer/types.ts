// The view-data schema: the exact JSON each view takes (documented in protocol/VIEWS.md).
// Strings, numbers and plain arrays only; positions are 0-based indexes into `tokens`.

export interface TokenData {
  text: string; // decoded text of this token alone, with its leading space if any
  id?: number;
  is_input?: boolean; // part of the prompt/selection (true) or generated (false); default false
  word_start?: boolean; // starts a new word; false joins it visually to the previous token
  special?: boolean; // a special token (BOS, EOS, ...)
}

export interface Alternative {
  text: string;
  id?: number;
  prob: number;
}

export interface TokensData {
  tokens: TokenData[];
}

export interface ProbabilityData {
  tokens: TokenData[];
  probs: (number | null)[]; // P(token i | tokens < i); null where not computed (e.g. position 0)
  top?: (Alternative[] | null)[]; // the model's top-k at the step that produced token i
  ranks?: (number | null)[]; // 1-based rank of token i among the vocabulary at its step
  entropy?: (number | null)[]; // entropy in nats of the distribution at that step
}

export interface TokenRef {
  text: string;
  id?: number;
}

export interface AttributionMethod {
  name: string; // "ig", "grad_x_input", "contrastive", ...
  label?: string;
  targets: number[]; // token positions explained, one per row of values
  values: number[][]; // (len(targets), len(tokens)); column j is token j's score; j >= target is ignored
  foils?: (TokenRef | null)[]; // contrastive: the foil each target was compared against
}

export interface SaliencyData {
  tokens: TokenData[];
  methods: AttributionMethod[];
  style?: "minimal" | "detailed";
}

export interface Prediction {
  text: string;
  id?: number;
  prob: number;
  rank: number; // 1-based
}

export interface LayerPredictionsAtPosition {
  position: number; // the position predicted (1..len(tokens)); len(tokens) = the token after the text
  layers: { top: Prediction[]; target?: Prediction | null }[]; // per layer, first first; target = actual token
}

export interface LayerPredictionsData {
  tokens: TokenData[];
  layer_labels?: string[];
  positions: LayerPredictionsAtPosition[];
  selected?: number;
}

export interface RankingsData {
  tokens: TokenData[];
  targets: number[]; // columns: token positions, each ranked from the hidden state at target - 1
  ranks: number[][]; // (layers, len(targets)), 1-based
  probs?: number[][];
  vocab_size?: number;
  layer_labels?: string[];
}

export interface RankingsWatchData {
  tokens: TokenData[];
  position: number; // the position predicted (1..len(tokens)); the watched tokens are candidates there
  watch: TokenRef[];
  ranks: number[][]; // (layers, len(watch)), 1-based
  probs?: number[][];
  vocab_size?: number;
  layer_labels?: string[];
  positions?: number[]; // the positions a live host can rank at (a picker offers them)
}

export interface NmfData {
  tokens: TokenData[];
  k: number;
  factors: number[][]; // (k, len(tokens)), non-negative activations
  from_layer: number;
  to_layer: number;
  alternatives?: { k: number; factors: number[][] }[]; // precomputed other factor counts
  k_range?: [number, number]; // factor counts a live host can compute
}

export interface AttentionData {
  tokens: TokenData[];
  layers: number[]; // the layer index of each slice in `attention`
  heads: number[]; // the head index of each slice
  attention: number[][][][]; // (len(layers), len(heads), T, T): [l][h][query][key]
  n_layers?: number; // the model's layer count: a live host computes the layers not embedded
}

export interface TabsData {
  tabs: { title: string; view: string; data: unknown; options?: RenderOptions }[];
}

export interface RenderOptions {
  theme?: "auto" | "light" | "dark";
  live?: boolean; // a host answers request-* events with handle.update(...)
  title?: string;
  scale?: "probability" | "surprisal";
  style?: "minimal" | "detailed";
  method?: string;
  mode?: "lines" | "heat";
  nonce?: string;
}

/** A streamed token for appendToken: the token plus what the probability view shows for it. */
export interface StreamToken extends TokenData {
  prob?: number | null;
  top?: Alternative[] | null;
  rank?: number | null;
  entropy?: number | null;
}
