/**
 * Prompt templates of kvlab's long-context tasks. The built-in long-context model
 * (models/sotu-llama-long) was trained on episodes written with these same strings
 * (tools/train-builtin/episodes.py; test/tasks/templates.test.ts checks they agree), so the
 * built-in model can do the tasks; any other model sees them as plain English.
 */

/** Passkey retrieval (Mohtashami & Jaggi 2023, arXiv:2305.16300): a number hidden in filler. */
export const PASSKEY = {
  intro: "A pass key is hidden in the text below. Remember it: you will be asked for it at the end.\n\n",
  filler: "The fields are green. The sky is clear. The river runs to the sea. Here we go again.\n",
  needle: (key: string) => `The pass key is ${key}. Remember it. ${key} is the pass key.\n`,
  question: "\nWhat is the pass key? The pass key is",
} as const;

/** Multi-key recall (RULER's multi-key needle, Hsieh et al. 2024, arXiv:2404.06654): one of many pairs queried. */
export const KV_RECALL = {
  intro: "Here is a list of names and numbers. Remember them.\n\n",
  line: (key: string, value: string) => `The number of ${key} is ${value}.\n`,
  question: (key: string) => `\nWhat is the number of ${key}? The number of ${key} is`,
} as const;

/** Variable tracking (RULER): a chain of assignments hidden in filler; every variable in it is asked for. */
export const VARIABLE_TRACKING = {
  intro: "Follow the variables. Remember which of them hold which value.\n\n",
  assignValue: (name: string, value: string) => `VAR ${name} = ${value}.\n`,
  assignVar: (name: string, prev: string) => `VAR ${name} = ${prev}.\n`,
  question: (value: string) => `\nWhich variables hold the value ${value}? They are:`,
} as const;

/** First names and family names for kv-recall keys (common US names). */
export const FIRST_NAMES = (
  "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard " +
  "Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark " +
  "Helen Donald Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin " +
  "Carol Brian Amanda George Melissa Edward Deborah Ronald Stephanie Timothy Rebecca Jason Laura " +
  "Jeffrey Sharon Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Shirley Eric Angela Jonathan Anna " +
  "Stephen Ruth Larry Brenda Justin Pamela Scott Nicole Frank Katherine Samuel Virginia Gregory " +
  "Catherine Alexander Christine Patrick Samantha Raymond Debra Jack Janet Dennis Rachel Jerry " +
  "Carolyn Tyler Emma Aaron Maria Henry Heather Douglas Diane Peter Julie Adam Joyce Walter Evelyn"
).split(" ");
export const LAST_NAMES = (
  "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson " +
  "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill Green Adams " +
  "Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart " +
  "Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson " +
  "Wood Watson Brooks Bennett Gray Hughes Price Sanders Myers Long Ross Foster"
).split(" ");
