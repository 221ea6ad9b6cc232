// The GraphQL layer every web client shares: typed documents (gql.tada, checked against the
// committed schema/schema.graphql) and one client that tells offline, logged-out, refused and
// broken apart, so that screens can say which it was.
import {
  Client,
  fetchExchange,
  type AnyVariables,
  type CombinedError,
  type TypedDocumentNode,
} from '@urql/core'
import { initGraphQLTada } from 'gql.tada'
import type { introspection } from './graphql-env.d.ts'

export const graphql = initGraphQLTada<{
  introspection: introspection
  scalars: { DateTime: string; Date: string; JSON: unknown; Decimal: string }
}>()
export type { FragmentOf, ResultOf, VariablesOf } from 'gql.tada'
export { readFragment } from 'gql.tada'

/** Why a request failed: `offline` (no answer), `unauthenticated` (log in again), `refused`
 * (an expected error of the API, with its code), `server` (anything else). */
export type FailureKind = 'offline' | 'unauthenticated' | 'refused' | 'server'

/** The codes that mean the token is no longer good. */
const LOGIN_AGAIN = new Set(['UNAUTHENTICATED', 'TOKEN_EXPIRED'])

export class ApiError extends Error {
  readonly kind: FailureKind
  readonly code: string | null
  readonly field: string | null

  constructor(kind: FailureKind, message: string, code: string | null = null, field: string | null = null) {
    super(message)
    this.name = 'ApiError'
    this.kind = kind
    this.code = code
    this.field = field
  }
}

/** One expected failure of a mutation (`errors { code message field }` in its payload). */
export interface UserError {
  readonly code: string
  readonly message: string
  readonly field?: string | null
}

export interface ApiOptions {
  /** Where GraphQL answers; the same origin by default. */
  readonly url?: string
  /** The bearer token of the session, read at every request. */
  readonly token: () => string | null
  /** Told when the server says the token is unknown, revoked or expired. */
  readonly onUnauthenticated?: () => void
  /** Milliseconds before a request counts as offline. */
  readonly timeoutMs?: number
}

export interface Api {
  query<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
  ): Promise<Data>
  mutation<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
  ): Promise<Data>
}

export function createApi(options: ApiOptions): Api {
  const timeoutMs = options.timeoutMs ?? 15000
  const client = new Client({
    url: options.url ?? '/graphql',
    exchanges: [fetchExchange],
    requestPolicy: 'network-only',
    preferGetMethod: false,
    fetchOptions: (): RequestInit => {
      const token = options.token()
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
      return { headers, signal: AbortSignal.timeout(timeoutMs) }
    },
  })

  async function run<Data>(
    result: Promise<{ data?: Data; error?: CombinedError }>,
  ): Promise<Data> {
    let answer
    try {
      answer = await result
    } catch (error) {
      throw new ApiError('offline', `服务器无应答: ${String(error)}`)
    }
    const { data, error } = answer
    if (error) {
      throw failure(error, options.onUnauthenticated)
    }
    if (data === undefined || data === null) {
      throw new ApiError('server', '服务器未返回数据')
    }
    return data
  }

  return {
    query: (document, variables) => run(client.query(document, variables).toPromise()),
    mutation: (document, variables) => run(client.mutation(document, variables).toPromise()),
  }
}

function failure(error: CombinedError, onUnauthenticated?: () => void): ApiError {
  const network = error.networkError
  const status = (error.response as Response | undefined)?.status
  if (network && !status) {
    return new ApiError('offline', '网络不可用, 请稍后再试')
  }
  if (status === 401) {
    onUnauthenticated?.()
    return new ApiError('unauthenticated', '登录已失效, 请重新登录', 'UNAUTHENTICATED')
  }
  const [first] = error.graphQLErrors
  if (first) {
    const code = typeof first.extensions?.code === 'string' ? first.extensions.code : null
    if (code && LOGIN_AGAIN.has(code)) {
      onUnauthenticated?.()
      return new ApiError('unauthenticated', '登录已失效, 请重新登录', code)
    }
    if (code) {
      return new ApiError('refused', first.message, code)
    }
    return new ApiError('server', first.message)
  }
  if (status && status >= 500) {
    return new ApiError('offline', `服务器暂时不可用 (HTTP ${status}), 请稍后再试`)
  }
  return new ApiError('server', error.message)
}

/** Throws the first of a payload's user errors as a `refused` ApiError (login again for
 * UNAUTHENTICATED and TOKEN_EXPIRED). */
export function raiseUserErrors(errors: readonly UserError[], onUnauthenticated?: () => void): void {
  const [first] = errors
  if (!first) return
  if (LOGIN_AGAIN.has(first.code)) {
    onUnauthenticated?.()
    throw new ApiError('unauthenticated', '登录已失效, 请重新登录', first.code)
  }
  throw new ApiError('refused', first.message, first.code, first.field ?? null)
}
