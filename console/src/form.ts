// A form's server-side errors: shown at the field the API named, or above the form when none fits.
import { ref } from 'vue'
import { ApiFailure } from './api'
import { describe, fieldErrors, translate } from './errors'

export function useServerErrors(aliases: Record<string, string> = {}) {
  const errors = ref<Record<string, string>>({})
  const general = ref('')
  return {
    errors,
    general,
    clear() {
      errors.value = {}
      general.value = ''
    },
    show(error: unknown, known: string[]) {
      const found = fieldErrors(error, aliases)
      errors.value = found
      const placed = Object.keys(found).some((field) => known.includes(field))
      const unplaced = Object.entries(found).filter(([field]) => !known.includes(field)).map(([, text]) => text)
      // Problems of the whole form (a model rule such as "a cash coupon needs a value") name no field.
      const whole = error instanceof ApiFailure ? error.problems.filter((p) => !p.field && !p.line).map((p) => translate(p.problem)) : []
      unplaced.push(...whole)
      general.value = placed && !unplaced.length ? '' : [describe(error), ...unplaced].join('：')
    },
  }
}
