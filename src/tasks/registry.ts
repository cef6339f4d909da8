/** What `kvlab info` says about each long-context task (src/tasks/generate.ts builds them). */
import type { TaskName } from "./generate.ts";

export const TASKS: Record<TaskName, { description: string; paper: string }> = {
  passkey: {
    description: "a 5-7 digit pass key in repeated filler (or a haystack); answer: the number",
    paper: "Mohtashami & Jaggi 2023, arXiv:2305.16300",
  },
  needle: {
    description: "a statement hidden in a haystack text (built-in set of 6 or your own); answer contained",
    paper: "Kamradt 2023, needle in a haystack; RULER, Hsieh et al. 2024, arXiv:2404.06654",
  },
  "kv-recall": {
    description: "many 'The number of NAME is N.' lines, one asked; answer: the number",
    paper: "RULER multi-key NIAH, Hsieh et al. 2024, arXiv:2404.06654",
  },
  vt: {
    description: "a chain of 4 variable assignments in filler; answer: every variable holding the value",
    paper: "RULER variable tracking, Hsieh et al. 2024, arXiv:2404.06654",
  },
};
