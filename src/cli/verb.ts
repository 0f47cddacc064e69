// The shape of one CLI verb: a summary for `lockgate --help`, its own usage text, and run() returning the exit code.
export interface Verb {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}
