// What the GraphiQL page needs besides GraphiQL itself: which operations are subscriptions,
// a graphql-ws subscription with the editor's headers as connection parameters (browsers cannot
// set headers on a websocket; the server reads `Authorization` from connection_init), and the
// first query and headers a visitor sees.
import type { FetcherParams, FetcherReturnType } from '@graphiql/toolkit'
import { Kind, getOperationAST, parse } from 'graphql'
import { createClient } from 'graphql-ws'
import { socketUrl } from '@shared/endpoints'
import { CONSOLE_SESSION_KEY } from '@shared/keys'

export function isSubscription(query: string, operationName: string | null): boolean {
  try {
    return getOperationAST(parse(query), operationName)?.operation === 'subscription'
  } catch {
    return false // the server will say what is wrong with it
  }
}

/** The operation name to send: GraphiQL may still hold the name of the document before the
 * last edit (it re-reads the document after a pause); a name the document no longer has is
 * dropped when the document has a single operation, instead of a refusal from the server. */
export function currentOperationName(query: string, operationName: string | null): string | null {
  if (!operationName) return null
  try {
    const operations = parse(query).definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION)
    const names = operations.map((d) => d.name?.value)
    if (names.includes(operationName) || operations.length !== 1) return operationName
    return names[0] ?? null
  } catch {
    return operationName
  }
}

export function subscribe(params: FetcherParams, headers: Record<string, unknown>): FetcherReturnType {
  const client = createClient({
    url: socketUrl(window.location),
    connectionParams: headers,
    lazy: true,
    retryAttempts: 0,
  })
  const events = client.iterate({
    query: params.query,
    variables: params.variables ?? undefined,
    operationName: params.operationName ?? undefined,
  })
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => events.next(),
      async return() {
        await events.return?.()
        await client.dispose()
        return { done: true, value: undefined }
      },
    }),
  } as FetcherReturnType
}

const WELCOME = `# 一窗通办 GraphQL 接口调试 (GraphiQL)
#
# 先登录取得令牌, 再在下方 Headers 中填写:
#   {"Authorization": "Bearer <token>"}
# 已在本浏览器登录办公台 (/console/) 时, 令牌已自动填入。
# Ctrl-Enter 执行, Ctrl-Space 提示字段, 左侧"文档"浏览全部类型。

mutation Login {
  login(username: "supervisor", password: "onewindow-demo") {
    token
    expiresAt
    errors { code message }
  }
}

query Projects {
  projects(first: 5) {
    totalCount
    edges { node { code name statusLabel stages { name statusLabel deadline } } }
  }
}
`

/** The first query, and the Authorization header when the console has a live session here. */
export function graphiqlDefaults(storage: Pick<Storage, 'getItem'>, now: number = Date.now()): {
  query: string
  headers: string
} {
  let headers = ''
  try {
    const session = JSON.parse(storage.getItem(CONSOLE_SESSION_KEY) ?? 'null') as {
      token?: unknown
      expiresAt?: unknown
    } | null
    if (
      session &&
      typeof session.token === 'string' &&
      typeof session.expiresAt === 'string' &&
      Date.parse(session.expiresAt) > now
    ) {
      headers = JSON.stringify({ Authorization: `Bearer ${session.token}` }, null, 2)
    }
  } catch {
    headers = ''
  }
  return { query: WELCOME, headers }
}
