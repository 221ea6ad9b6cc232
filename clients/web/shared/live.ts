// Live events over graphql-ws (strawberry speaks graphql-transport-ws): one socket per app,
// the bearer token in the connection_init payload (browsers cannot set headers on a websocket),
// reconnecting with backoff, with a status that screens show ("实时" / "重连中").
import { createClient, type Client } from 'graphql-ws'
import { print } from 'graphql'
import { ref, type Ref } from 'vue'
import type { TypedDocumentNode } from '@urql/core'
import { socketUrl } from './endpoints'

/** idle: nothing subscribed yet (the socket opens with the first subscription). */
export type LiveStatus = 'idle' | 'connecting' | 'live' | 'retrying' | 'closed'

export interface Live {
  readonly status: Ref<LiveStatus>
  /** Calls `next` with each result's data until the returned function is called. */
  subscribe<Data, Variables extends Record<string, unknown>>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
    next: (data: Data) => void,
    error?: (message: string) => void,
  ): () => void
  close(): Promise<void>
}

export function createLive(options: { token: () => string | null; url?: string }): Live {
  const status = ref<LiveStatus>('idle')
  let active = 0 // subscriptions open: with none, the lazy socket closes and that is no failure
  const client: Client = createClient({
    url: options.url ?? socketUrl(window.location),
    connectionParams: () => {
      const token = options.token()
      return token ? { Authorization: `Bearer ${token}` } : {}
    },
    lazy: true,
    keepAlive: 20_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      status.value = 'retrying'
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** retries)))
    },
    on: {
      connecting: () => {
        if (status.value !== 'retrying') status.value = 'connecting'
      },
      connected: () => (status.value = 'live'),
      closed: () => {
        if (active === 0) status.value = 'idle'
        else if (status.value === 'live') status.value = 'retrying'
      },
    },
  })

  return {
    status,
    subscribe(document, variables, next, error) {
      active++
      let done = false
      const finish = (): void => {
        if (!done) {
          done = true
          active--
        }
      }
      const unsubscribe = client.subscribe(
        { query: print(document), variables },
        {
          next: (result) => {
            if (result.errors?.length) error?.(result.errors.map((e) => e.message).join('; '))
            else if (result.data) next(result.data as never)
          },
          error: (failure) => {
            finish()
            error?.(failure instanceof Error ? failure.message : '实时连接中断')
          },
          complete: finish,
        },
      )
      return () => {
        finish()
        unsubscribe()
      }
    },
    async close() {
      status.value = 'closed'
      await client.dispose()
    },
  }
}
