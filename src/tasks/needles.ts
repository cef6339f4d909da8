/**
 * The built-in needle set of `kvlab task needle`: a statement hidden in a haystack, a question
 * that ends where the answer starts, and the answer. Each is phrased "What is X? X is", so a
 * model that can copy from its context can answer without instruction tuning. None of these
 * attributes occurs in the built-in model's training episodes (tools/train-builtin/episodes.py),
 * so the task measures retrieval, not memorised facts.
 */
export interface Needle {
  statement: string;
  question: string;
  answer: string;
}

export const BUILTIN_NEEDLES: readonly Needle[] = [
  {
    statement: "The secret ingredient in the governor's soup is smoked paprika.",
    question:
      "What is the secret ingredient in the governor's soup? The secret ingredient in the governor's soup is",
    answer: "smoked paprika",
  },
  {
    statement: "The name of the captain's ship is the Northern Star.",
    question: "What is the name of the captain's ship? The name of the captain's ship is",
    answer: "the Northern Star",
  },
  {
    statement: "The best place to watch the sunset is the old stone bridge.",
    question: "What is the best place to watch the sunset? The best place to watch the sunset is",
    answer: "the old stone bridge",
  },
  {
    statement: "The password of the library vault is copper kettle.",
    question: "What is the password of the library vault? The password of the library vault is",
    answer: "copper kettle",
  },
  {
    statement: "The motto of the harbor guild is steady hands.",
    question: "What is the motto of the harbor guild? The motto of the harbor guild is",
    answer: "steady hands",
  },
  {
    statement: "The color of the mayor's front door is bright orange.",
    question: "What is the color of the mayor's front door? The color of the mayor's front door is",
    answer: "bright orange",
  },
];
