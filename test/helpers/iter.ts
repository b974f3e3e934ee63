/** An async iterable over `items` (a sync generator or array), for APIs that take AsyncIterable. */
export function asAsync<T>(items: Iterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = items[Symbol.iterator]();
      return { next: () => Promise.resolve(it.next()) };
    },
  };
}
