// @ts-check
// Undo and redo of every step on an image: prompts, the chosen candidate, brush strokes, and
// kept objects (kept, renamed, removed). A step carries its own undo and redo; steps run one at
// a time, in order, so a quick Ctrl+Z Ctrl+Z never interleaves with a server call.

/**
 * @typedef {{label: string, undo: () => (void | Promise<void>),
 *   redo: () => (void | Promise<void>)}} Step
 */

export class History {
  /** @param {() => void} changed called after every change of the stacks */
  constructor(changed) {
    /** @type {Step[]} */ this.done = [];
    /** @type {Step[]} */ this.undone = [];
    this.changed = changed;
    /** @type {Promise<unknown>} */ this.queue = Promise.resolve();
  }

  /** Record a step that has just been done (it clears what could be redone). @param {Step} step */
  push(step) {
    this.done.push(step);
    this.undone = [];
    this.changed();
  }

  get canUndo() {
    return this.done.length > 0;
  }

  get canRedo() {
    return this.undone.length > 0;
  }

  /** @returns {Promise<string | null>} the label of the step undone */
  undo() {
    return this.#run(this.done, this.undone, "undo");
  }

  /** @returns {Promise<string | null>} the label of the step redone */
  redo() {
    return this.#run(this.undone, this.done, "redo");
  }

  /**
   * @param {Step[]} from
   * @param {Step[]} to
   * @param {"undo" | "redo"} how
   * @returns {Promise<string | null>}
   */
  #run(from, to, how) {
    const next = this.queue.then(async () => {
      const step = from.pop();
      if (!step) return null;
      try {
        await step[how]();
      } catch (err) {
        from.push(step); // not done: it stays where it was
        this.changed();
        throw err;
      }
      to.push(step);
      this.changed();
      return step.label;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
