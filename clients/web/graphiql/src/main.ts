// GraphiQL served by our own server at /graphql (no CDN: it works on a network without internet).
// React lives inside this bundle only. Queries and mutations go over HTTP, subscriptions over
// graphql-ws (graphql-transport-ws), both with the headers typed in the headers editor; the
// console's session, when there is one in this browser, fills the Authorization header.
import 'graphiql/setup-workers/vite'
import 'graphiql/style.css'
import './page.css'
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit'
import { GraphiQL } from 'graphiql'
import { createElement } from 'react'
import { createRoot } from 'react-dom/client'
import { currentOperationName, graphiqlDefaults, isSubscription, subscribe } from './fetcher'

const http = createGraphiQLFetcher({ url: '/graphql' })

const fetcher: Fetcher = (requested, options) => {
  const headers = (options?.headers ?? {}) as Record<string, unknown>
  const params = {
    ...requested,
    operationName: currentOperationName(requested.query, requested.operationName ?? null),
  }
  if (isSubscription(params.query, params.operationName)) {
    return subscribe(params, headers)
  }
  return http(params, options)
}

const container = document.getElementById('graphiql')
if (container) {
  container.textContent = ''
  const defaults = graphiqlDefaults(localStorage)
  createRoot(container).render(
    createElement(GraphiQL, {
      fetcher,
      defaultQuery: defaults.query,
      defaultHeaders: defaults.headers,
      defaultEditorToolsVisibility: defaults.headers ? 'headers' : false,
    }),
  )
}
