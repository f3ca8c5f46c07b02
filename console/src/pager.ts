// Server-side paging over the API's cursors (`after`, `before_id`): one page is fetched at a time,
// one row more than shown tells whether a next page exists, and a stack of cursors walks back.
import { ref, shallowRef } from 'vue'
import { describe } from './errors'

export type FetchPage<T> = (cursor: string | undefined, limit: number) => Promise<T[]>

export function useCursorPager<T>(fetchPage: FetchPage<T>, cursorOf: (row: T) => string, pageSize = 20) {
  const rows = shallowRef<T[]>([])
  const loading = ref(false)
  const error = ref('')
  const page = ref(1)
  const hasNext = ref(false)
  let cursors: (string | undefined)[] = [undefined]
  let generation = 0 // a slow old answer must not overwrite a newer one

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    error.value = ''
    try {
      const found = await fetchPage(cursors[page.value - 1], pageSize + 1)
      if (mine !== generation) return
      hasNext.value = found.length > pageSize
      rows.value = found.slice(0, pageSize)
      cursors[page.value] = rows.value.length ? cursorOf(rows.value[rows.value.length - 1]) : undefined
    } catch (failure) {
      if (mine !== generation) return
      rows.value = []
      hasNext.value = false
      error.value = describe(failure)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  return {
    rows, loading, error, page, hasNext,
    async reload() {
      cursors = [undefined]
      page.value = 1
      await load()
    },
    async next() {
      if (!hasNext.value) return
      page.value += 1
      await load()
    },
    async previous() {
      if (page.value === 1) return
      page.value -= 1
      await load()
    },
  }
}
