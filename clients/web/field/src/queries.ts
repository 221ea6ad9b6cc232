// Every GraphQL document of the field app, typed by gql.tada against schema/schema.graphql.
import { graphql, type ResultOf } from '@shared/graphql'

export const MyInspectionsQuery = graphql(`
  query FieldMyInspections {
    myInspections(openOnly: false) {
      id kind kindLabel round status statusLabel due scheduledFor documentName
      project { id code name address }
      setup { code companyName region businessType { code name } }
      departments {
        conclusion conclusionLabel
        department { code name shortName }
        checks { code label unit measurable minimum maximum }
      }
      assignments { person { username displayName } department { code } }
    }
  }
`)

export type InspectionSummary = ResultOf<typeof MyInspectionsQuery>['myInspections'][number]

/** What an inspection checks, as the list and the screen show it: a construction project (its
 * name; code and address), or a company setup's premises (企业设立: the company; business type,
 * setup code and region). */
export function inspectedCase(item: Pick<InspectionSummary, 'project' | 'setup'>): { title: string; detail: string } {
  if (item.setup) {
    const { setup } = item
    return { title: setup.companyName, detail: `企业设立 ${setup.businessType.name} · ${setup.code} · ${setup.region}` }
  }
  if (item.project) return { title: item.project.name, detail: `${item.project.code} · ${item.project.address}` }
  return { title: '', detail: '' }
}

export const InspectionPhotosQuery = graphql(`
  query FieldInspectionPhotos($id: ID!) {
    inspection(id: $id) {
      id
      departments {
        department { code }
        checks { code photos { id status statusLabel thumbnailUrl takenAt latitude longitude } }
      }
    }
  }
`)

export type PhotoInfo = NonNullable<
  ResultOf<typeof InspectionPhotosQuery>['inspection']
>['departments'][number]['checks'][number]['photos'][number]

export const MyProjectsQuery = graphql(`
  query FieldMyProjects($agent: String!) {
    projects(first: 100, filter: { agent: $agent }) {
      edges {
        node {
          id code name address statusLabel
          enterprise { name }
          stages {
            code name order status statusLabel deadline overdue
            tasks {
              id statusLabel deadline overdue paused defaultApproved
              item { name }
              department { shortName }
            }
          }
        }
      }
    }
  }
`)

export type ProjectSummary = ResultOf<typeof MyProjectsQuery>['projects']['edges'][number]['node']

