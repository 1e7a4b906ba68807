/** Where a command writes: its standard output and error, as functions so tests and the demo can capture them. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}
